package api

import (
	"net/http"

	"gatehouse/admin"
)

// The S3 export of the audit log and the login history (issue #15, seed
// 000): Super Administrators only. The secret access key is write-only.

type s3ExportBody struct {
	Enabled         bool   `json:"enabled"`
	Endpoint        string `json:"endpoint"`
	Region          string `json:"region"`
	Bucket          string `json:"bucket"`
	Prefix          string `json:"prefix"`
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	PathStyle       bool   `json:"pathStyle"`
}

func (a *API) getS3Export(c *call) error {
	v, err := a.S3Exports.Get(c.r.Context(), c.p)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, v)
}

func (a *API) putS3Export(c *call) error {
	var b s3ExportBody
	if err := c.decode(&b); err != nil {
		return err
	}
	v, err := a.S3Exports.Set(c.r.Context(), c.p, admin.S3ExportSpec{Enabled: b.Enabled, Endpoint: b.Endpoint, Region: b.Region,
		Bucket: b.Bucket, Prefix: b.Prefix, AccessKeyID: b.AccessKeyID, SecretAccessKey: b.SecretAccessKey, PathStyle: b.PathStyle})
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, v)
}
